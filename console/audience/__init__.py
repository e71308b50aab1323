"""Helpers of the Audience pages: contacts and lists, opt-outs, templates, the message log."""
