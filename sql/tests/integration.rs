//! weir-sql's one integration-test binary: the golden queries and the fixture they run on.

mod continuous;
mod fixture;
mod golden;
mod pushdown;
mod session;
