//! The plugin's build against the gateway's: `plugin-check` (what `make plugin-check` runs) says
//! "compatible" for the plugin and gateway built here, and refuses, with the reason and the fix, the
//! plugins a KrakenD built like this gateway would not load: one built with `-trimpath`, one built by
//! another Go release (`make plugin-variants` builds both). Each refusal is checked against Go's own
//! plugin loader, in the gateway's `test-plugin` and `run`.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::gateway::{gateway_config, Gateway};
use common::var;

fn run(program: &str, args: &[&str]) -> (i32, String) {
    let Output { status, stdout, stderr } = Command::new(program).args(args).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&stdout), String::from_utf8_lossy(&stderr));
    (status.code().unwrap_or(-1), text)
}

/// The two gateways built here: the product's (stripped) and the test rig's (CE's build exactly).
fn gateways() -> [String; 2] {
    [var("KK_KRAKEND_BIN"), var("KK_KRAKEND_RIG_BIN")]
}

fn check(gateway: &str, plugin: &str) -> (i32, String) {
    run(&var("KK_PLUGIN_CHECK_BIN"), &["-krakend", gateway, "-plugin", plugin])
}

fn load(gateway: &str, plugin: &str) -> (i32, String) {
    run(gateway, &["test-plugin", "-c", plugin])
}

fn variant(name: &str) -> String {
    format!("{}/{name}/krakend-kafka.so", var("KK_PLUGIN_VARIANTS"))
}

#[test]
#[ignore = "needs the gateway and plugins of build/: run `make test`"]
fn the_gateways_say_what_they_were_built_with_as_krakend_ce_does() {
    // The Go release the Makefile built them with.
    let go = var("KK_GO_VERSION").trim_start_matches("go").to_string();
    for gateway in gateways() {
        let (code, out) = run(&gateway, &["version"]);
        assert_eq!(code, 0, "{out}");
        assert!(out.contains(&format!("\nGo Version: {go}\n")), "{out}");
        assert!(out.lines().any(|l| l.starts_with("Glibc Version: GLIBC-2.")), "{out}");
    }
}

#[test]
#[ignore = "needs the gateway and plugins of build/: run `make test`"]
fn the_plugin_built_here_is_compatible_and_loads() {
    let plugin = var("KK_PLUGIN");
    for gateway in gateways() {
        let (code, out) = check(&gateway, &plugin);
        assert_eq!(code, 0, "{out}");
        assert!(out.starts_with("compatible: "), "{out}");
        assert!(out.contains("no -trimpath, cgo; the gateway's glibc 2.36, the plugin needs glibc 2."), "{out}");
        let (code, out) = load(&gateway, &plugin);
        assert_eq!((code, out.starts_with("[OK]")), (0, true), "{out}");
    }
}

#[test]
#[ignore = "needs the gateway and plugins of build/: run `make test`"]
fn a_gateway_built_on_an_older_glibc_than_the_plugin_needs_is_refused() {
    // What `krakend version` of a gateway built on glibc 2.17 prints, given as from another machine.
    let version = std::env::temp_dir().join(common::unique("version.txt"));
    std::fs::write(&version, "KrakenD Version: 2.13.8\nGo Version: 1.26.8\nGlibc Version: GLIBC-2.17_(centos-7)\n")
        .unwrap();
    let check = |file: &std::path::Path| {
        let args = ["-krakend", &var("KK_KRAKEND_BIN"), "-plugin", &var("KK_PLUGIN"), "-version-file"];
        let mut args: Vec<&str> = args.to_vec();
        args.push(file.to_str().unwrap());
        run(&var("KK_PLUGIN_CHECK_BIN"), &args)
    };
    let (code, out) = check(&version);
    assert_eq!(code, 1, "{out}");
    // The plugin's own needs, read from its ELF symbol versions (it is built on glibc 2.36).
    assert!(out.contains("- glibc: the plugin has symbols of glibc 2."), "{out}");
    assert!(out.contains("the gateway glibc 2.17."), "{out}");
    assert_eq!(out.matches("\n- ").count(), 1, "one difference only: {out}");
    // A version file that cannot be read is an error, not a pass.
    let (code, out) = check(std::path::Path::new("/nonexistent/krakend-version"));
    assert_eq!(code, 2, "{out}");
}

/// The check refuses `variant` for exactly one `difference`, naming `fix`, and Go's loader in each
/// gateway's `test-plugin` refuses it too, saying `loader_says`.
fn refused(variant_name: &str, difference: &str, fix: &str, loader_says: &str) {
    let plugin = variant(variant_name);
    for gateway in gateways() {
        let (code, out) = check(&gateway, &plugin);
        assert_eq!(code, 1, "{out}");
        assert!(out.contains(difference) && out.contains(fix), "{out}");
        assert_eq!(out.matches("\n- ").count(), 1, "one difference only: {out}");

        let (code, out) = load(&gateway, &plugin);
        eprintln!("Go's plugin loader: {out}");
        assert!(code != 0 && !out.contains("[OK]") && out.contains(loader_says), "{code}: {out}");
    }
}

#[test]
#[ignore = "needs the gateway and plugins of build/: run `make test`"]
fn a_plugin_built_with_trimpath_is_refused_and_would_not_load() {
    refused(
        "trimpath",
        "- -trimpath: the plugin has it set, the gateway it not set.",
        "Fix: rebuild without -trimpath",
        "plugin was built with a different version of package",
    );
}

#[test]
#[ignore = "needs the gateway and plugins of build/: run `make test`"]
fn a_plugin_built_by_another_go_release_is_refused_and_would_not_load() {
    // The loader returns no error here: the Go runtime stops the process.
    refused(
        "go1.27.3",
        "- Go release: the plugin has go1.27.3, the gateway go1.",
        "make plugin GO=/path/to/go1.",
        "fatal error: runtime: no plugin module data",
    );
}

/// The product's gateway with `plugin` alone in its plugin folder, serving one plugin endpoint.
fn gateway_with(plugin: &str) -> Gateway {
    let config = gateway_config("2s", &[("/v1/event/{topic}", serde_json::json!({}))]);
    Gateway::spawn(&var("KK_KRAKEND_BIN"), config, Some(plugin))
}

#[test]
#[ignore = "needs the gateway and plugins of build/: run `make test`"]
fn a_gateway_given_the_trimpath_plugin_serves_without_it() {
    let mut gateway = gateway_with(&variant("trimpath"));
    gateway.wait_serving();
    let answer = common::http_answer(&gateway.address, "POST", "/v1/event/t", &[], b"{}").unwrap();
    let text = gateway.log();
    eprintln!("the gateway's log: {text}");
    assert!(text.contains("Total plugins loaded: 0"), "{text}");
    assert!(text.contains("plugin was built with a different version of package"), "{text}");
    // Not the plugin's answer: lura's own 500 from the backend host nobody serves.
    assert!(!answer.body.contains("statusCode"), "{}: {}", answer.status, answer.body);
    assert_eq!(answer.status, 500, "{}", answer.body);
}

#[test]
#[ignore = "needs the gateway and plugins of build/: run `make test`"]
fn a_gateway_given_the_plugin_of_another_go_release_dies_at_start_up() {
    let mut gateway = gateway_with(&variant("go1.27.3"));
    let status = gateway.exited_within(Duration::from_secs(30));
    let text = gateway.log();
    let status = status.unwrap_or_else(|| panic!("still running: {text}"));
    assert!(!status.success(), "{text}");
    assert!(text.contains("fatal error: runtime: no plugin module data"), "{status}: {text}");
}
