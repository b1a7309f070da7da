// Command plugin-check says, before a deployment, whether the krakend-kafka plugin loads into a given
// KrakenD binary, and if not exactly what differs and how to rebuild:
//
//	plugin-check -krakend /usr/bin/krakend -plugin build/plugins/krakend-kafka.so
//
// It reads both files' Go build information and libc, and runs `krakend version` (for the glibc the
// gateway was built on); when the gateway cannot run here (say, a musl build on a glibc machine), pass
// what it printed on its own machine with -version-file. Exit status: 0 compatible, 1 not, 2 unreadable.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/krakend-kafka/krakend-kafka/go-shim/internal/compat"
)

func main() {
	krakend := flag.String("krakend", "", "the KrakenD binary the plugin is for")
	plugin := flag.String("plugin", "", "the plugin (.so)")
	versionFile := flag.String("version-file", "", "what `krakend version` printed, when it cannot run here")
	flag.Parse()
	if *krakend == "" || *plugin == "" {
		flag.Usage()
		os.Exit(2)
	}
	os.Exit(check(*krakend, *plugin, *versionFile))
}

func check(krakendPath, pluginPath, versionFile string) int {
	host, err := compat.Read(krakendPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "plugin-check:", err)
		return 2
	}
	version, err := krakendVersion(krakendPath, versionFile)
	switch {
	case err != nil && versionFile != "":
		fmt.Fprintln(os.Stderr, "plugin-check:", err)
		return 2
	case err != nil:
		fmt.Fprintf(os.Stderr, "plugin-check: %v; the glibc it was built on is not known\n", err)
	}
	host = compat.Host(host, compat.ParseVersion(version))
	plugin, err := compat.Read(pluginPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "plugin-check:", err)
		return 2
	}
	diffs := compat.Compare(host, plugin)
	if len(diffs) == 0 {
		trimpath := "no -trimpath"
		if host.Trimpath {
			trimpath = "-trimpath"
		}
		fmt.Printf("compatible: %s loads into %s (both %s, %s, cgo; the gateway's %s %s, the plugin needs glibc %s)\n",
			pluginPath, krakendPath, host.Go, trimpath, host.Libc, orUnknown(host.LibcVersion), plugin.LibcVersion)
		return 0
	}
	fmt.Printf("not compatible: %s would not load into %s (%d difference(s)):\n", pluginPath, krakendPath, len(diffs))
	for _, d := range diffs {
		fmt.Println("- " + d.String())
	}
	return 1
}

func krakendVersion(path, file string) (string, error) {
	if file != "" {
		out, err := os.ReadFile(file)
		return string(out), err
	}
	// A path, never a name to look up on PATH: the file read for its build information is the one run.
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, abs, "version").Output()
	if err != nil {
		return "", fmt.Errorf("`%s version` did not run here (%v): pass its output with -version-file", path, err)
	}
	return string(out), nil
}

func orUnknown(s string) string {
	if s == "" {
		return "(version unknown)"
	}
	return s
}
