"""Generic machinery for controllers: keyed work queues and task supervision."""
