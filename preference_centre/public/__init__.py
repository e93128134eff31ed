"""The public pages: preference page, unsubscribe, short links, self-service rights, fresh links."""
