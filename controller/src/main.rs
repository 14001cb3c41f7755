/// jemalloc, with its background thread purging freed pages (after its 10 s decay): a big
/// config file that is removed, or a burst of streams that ends, does not leave its peak
/// resident.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    if let Err(error) = tikv_jemalloc_ctl::background_thread::write(true) {
        eprintln!("meshfleet: cannot start the allocator's purging thread: {error}");
    }
    meshfleet::cli::main()
}
