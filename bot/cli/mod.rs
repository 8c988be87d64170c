//! The command line: one file per command. This is the only layer with clap, anyhow,
//! printing and progress bars; everything it runs is in the library, which returns typed
//! results for these files to print.

pub mod api_key;
mod bench_cpu;
pub mod bench_flood;
pub mod bench_nlu;
pub mod bench_serve;
mod bench_target;
pub mod customer;
pub mod eval;
mod eval_answers;
pub mod feedback;
pub mod hash_password;
pub mod init;
pub mod nlu;
pub mod replay;
pub mod rules;
pub mod serve;
pub mod simulate;
pub mod store;
pub mod support;
pub mod token;
pub mod train;
