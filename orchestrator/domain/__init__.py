"""Pure domain logic: no I/O, no database, no network. Time comes from a Clock passed in."""
