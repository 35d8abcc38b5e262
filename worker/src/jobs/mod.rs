//! Job handlers, one module per job family, and the context they run in.
