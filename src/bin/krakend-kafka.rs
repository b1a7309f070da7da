//! `krakend-kafka serve -c config.json`: the plugin's HTTP interface as a service of its own.

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    krakend_kafka::service::main(&args)
}
