//! loupe-proxy (skeleton)
fn main() {}
