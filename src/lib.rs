//! chatgate: a self-hosted OpenAI-API gateway. The binary (`main.rs`) parses
//! the command line; everything else lives here so tests can drive it.

pub mod account;
pub mod admin;
pub mod audit;
pub mod catalogue;
pub mod cli;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod db;
pub mod error;
pub mod keys;
pub mod keytable;
pub mod leases;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod model_pattern;
pub mod my_keys;
pub mod objects;
pub mod oidc;
pub mod output;
pub mod paths;
pub mod periodic;
pub mod proxy;
pub mod server;
pub mod sessions;
pub mod settle;
pub mod signin;
pub mod state;
pub mod teams;
pub mod throttle;
pub mod upstream;
pub mod usage;
pub mod users;
pub mod web;
