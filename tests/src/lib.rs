pub mod harness {}
