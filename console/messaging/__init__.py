"""Helpers of the Messaging pages: campaigns (new and list), status look-ups."""
