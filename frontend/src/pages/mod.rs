//! One module per route.

pub mod audit;
pub mod canary;
pub mod config;
pub mod graph;
pub mod login;
pub mod mesh;
pub mod trace;
pub mod traces;
