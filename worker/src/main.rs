mod jobs;

fn main() {}
