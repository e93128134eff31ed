"""Provider webhooks (Twilio): verify, parse, call a service."""
