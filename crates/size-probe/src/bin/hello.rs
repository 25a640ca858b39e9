//! The baseline: std's runtime and formatting, nothing else.

fn main() {
    println!("hello {}", std::env::args().count());
}
