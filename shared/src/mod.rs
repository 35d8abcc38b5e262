
mod client;
pub use client::{BlockingConn, Queue};
