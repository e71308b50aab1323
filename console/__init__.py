"""The Streamlit side of the console, shared by the page scripts in ``pages/``.

- :mod:`console.runtime`: the process-wide objects (settings, ledger, client, sandbox gateway,
  callback receiver), started once per process;
- :mod:`console.shell`: what every page calls first (``page_setup``): the sidebar, the mode
  banner, the cap banners, the error handling;
- :mod:`console.views`: formatting shared by every page (money, times, tables, badges);
- :mod:`console.messaging`: the Send, Campaigns, Status and Short links pages' helpers;
- :mod:`console.finance`: the Spend and Limits pages' helpers.

``console`` imports ``kedacore``, and ``gateway`` only to run the sandbox; ``kedacore`` imports
neither (docs/architecture.md).
"""
