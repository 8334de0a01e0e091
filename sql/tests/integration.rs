//! weir-sql's one integration-test binary: the golden queries and the fixture they run on.

mod fixture;
mod golden;
mod session;
