//! loupe-sample (skeleton)
fn main() {}
