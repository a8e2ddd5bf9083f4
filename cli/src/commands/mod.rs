//! One module per subcommand (or family of subcommands).

pub mod analyze;
pub mod authz;
pub mod collector;
pub mod config;
pub mod console;
pub mod console_api;
pub mod control;
pub mod dashboard;
pub mod demo;
pub mod install;
pub mod manifest;
pub mod proxy_status;
pub mod route;
pub mod runtime;
pub mod user;
pub mod workload;
