"""The Finance pages' helpers.

- :mod:`console.finance.views`: plain functions (no Streamlit): periods, KPI cards, the cap
  form's checks, gauges, audit tables;
- :mod:`console.finance.alerts`: today's cap state as banners (no Streamlit; drawn by the shell);
- :mod:`console.finance.spend`: the Spend page's Streamlit pieces (cached readers, demo history,
  filters, charts, exports);
- :mod:`console.finance.limits`: the Limits page's Streamlit pieces (today's gauges, the change
  form and its confirmation, the audit trail).
"""
