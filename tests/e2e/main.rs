//! End-to-end tests: the `floe` binary against a Kafka-protocol broker running as a
//! process of its own on loopback, with a SQLite catalog and a warehouse in a temp dir, or
//! with PostgreSQL and an S3-compatible store started on loopback.

mod crash;
mod evolution;
mod fixture;
mod keys;
mod lifecycle;
mod lookup;
mod lookup_topic;
mod maintenance;
mod nested;
mod operations;
mod pipeline;
mod pyiceberg;
mod quality;
mod registry;
mod rest;
mod scrape;
mod services;
mod shared_catalog;
mod shared_tables;
mod startup;
mod trouble;
