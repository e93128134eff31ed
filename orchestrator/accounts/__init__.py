"""Console accounts (the marketer console under /admin): who may sign in, with which role."""
