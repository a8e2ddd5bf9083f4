//! Route + authorize over 100 VirtualService routes and 100 policy rules.
//! (Skeleton: the model work fills this in.)

use criterion::{Criterion, criterion_group, criterion_main};

fn decide(c: &mut Criterion) {
    c.bench_function("noop", |b| b.iter(|| 1 + 1));
}

criterion_group!(benches, decide);
criterion_main!(benches);
