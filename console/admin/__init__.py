"""The Admin pages' helpers.

- :mod:`console.admin.members`: Admin → Members (the list, invite by e-mail, roles, remove,
  sign out everywhere), every action re-checked with ``console.access.require``.
"""
