"""The marketer console under /admin (issue 8): sign-in, contacts, campaigns, funnel, suppression,
data-subject requests. Built on the same orchestrator functions as the CLI, so both give the same
answers; every action is recorded in the audit log."""
