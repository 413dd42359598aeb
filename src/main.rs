fn main() {
    std::process::exit(cmdb_lite::cli::main());
}
