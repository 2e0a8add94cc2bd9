#![allow(dead_code)]
pub mod fake;
pub mod gateway;
pub mod redis;
pub mod responses_check;
