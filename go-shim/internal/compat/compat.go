// Package compat tells whether a Go plugin can load into a given KrakenD binary, before it is deployed.
//
// Go's plugin loader accepts a plugin only when the host and the plugin were built by the same Go
// release, with the same -trimpath setting and runtime variant (race detector, GOEXPERIMENT), with the
// same version of every module both contain, and for a libc the host runs on. A mismatch is found at
// start-up, when it is fatal (the gateway dies) or silent (the plugin is left out). Everything compared
// here is written into both files by the Go linker (their build information) or by KrakenD's release
// build (`krakend version`), so the check needs neither the gateway's sources nor running it on the
// target machine.
package compat

import (
	"debug/buildinfo"
	"debug/elf"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Build is what decides whether a plugin loads: a host gateway's or a plugin's.
type Build struct {
	Go         string            // the Go release, as "go1.25.12"
	Trimpath   bool              // built with -trimpath
	Cgo        bool              // CGO_ENABLED=1 (a host without cgo loads no plugin at all)
	Race       bool              // built with -race
	Experiment string            // GOEXPERIMENT
	BuildMode  string            // "plugin" for a plugin
	Modules    map[string]string // module path -> version (the replacement's, when replaced)
	// Libc is "glibc" or "musl" ("" when the file links no libc). For a host, LibcVersion is the glibc
	// it was built on (its `krakend version`; "" when not known); for a plugin, the newest glibc symbol
	// version it needs.
	Libc        string
	LibcVersion string
}

// Read reads a Go binary's or plugin's build information and the libc it links.
func Read(path string) (Build, error) {
	file, err := os.Open(path)
	if err != nil {
		return Build{}, err
	}
	defer file.Close()
	info, err := buildinfo.Read(file)
	if err != nil {
		return Build{}, fmt.Errorf("%s: no Go build information (%v)", path, err)
	}
	b := Build{Go: info.GoVersion, Modules: map[string]string{}}
	for _, s := range info.Settings {
		switch s.Key {
		case "-trimpath":
			b.Trimpath = s.Value == "true"
		case "CGO_ENABLED":
			b.Cgo = s.Value == "1"
		case "-race":
			b.Race = s.Value == "true"
		case "GOEXPERIMENT":
			b.Experiment = s.Value
		case "-buildmode":
			b.BuildMode = s.Value
		}
	}
	// Keyed by the module's own path: a gateway that replaced it with a fork still holds that module.
	for _, m := range info.Deps {
		version := m.Version
		if r := m.Replace; r != nil {
			version = "=> " + r.Path + " " + r.Version
		}
		b.Modules[m.Path] = version
	}
	f, err := elf.NewFile(file)
	if err != nil {
		return b, fmt.Errorf("%s: not an ELF file (%v)", path, err)
	}
	b.Libc, b.LibcVersion = libc(f)
	return b, nil
}

// libc names the C library an ELF file links and the newest glibc symbol version it imports.
func libc(f *elf.File) (string, string) {
	kind := ""
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		interp := make([]byte, p.Filesz)
		if _, err := p.ReadAt(interp, 0); err == nil && strings.Contains(string(interp), "musl") {
			return "musl", ""
		}
		kind = "glibc"
	}
	libs, _ := f.ImportedLibraries()
	for _, lib := range libs {
		switch {
		case strings.HasPrefix(lib, "libc.musl"):
			return "musl", ""
		case lib == "libc.so.6":
			kind = "glibc"
		}
	}
	newest := ""
	symbols, _ := f.ImportedSymbols()
	for _, s := range symbols {
		if v, ok := strings.CutPrefix(s.Version, "GLIBC_"); ok && glibcNewer(v, newest) {
			newest = v
		}
	}
	return kind, newest
}

var glibcVersion = regexp.MustCompile(`^\d+(\.\d+)*$`)

// glibcNewer reports whether glibc version a is newer than b ("" is older than any version; a version
// that is not numbers, such as PRIVATE, is newer than none).
func glibcNewer(a, b string) bool {
	if !glibcVersion.MatchString(a) {
		return false
	}
	if b == "" {
		return true
	}
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		x, y := 0, 0
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x > y
		}
	}
	return false
}

// Version is what `krakend version` prints of the build: "Go Version: 1.25.12" and
// "Glibc Version: GLIBC-2.36_(debian-12)" (or "MUSL-1.2.5_(alpine-3.23)", or "undefined").
type Version struct {
	Go          string // "go1.25.12"; "" when not printed
	Libc        string // "glibc", "musl" or ""
	LibcVersion string // "2.36" for glibc
}

var libcLine = regexp.MustCompile(`^(GLIBC|MUSL)-([0-9.]+)`)

// ParseVersion reads the output of `krakend version`.
func ParseVersion(out string) Version {
	var v Version
	for _, line := range strings.Split(out, "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		value = strings.TrimSpace(value)
		switch strings.TrimSpace(name) {
		case "Go Version":
			if value != "" && value != "undefined" {
				v.Go = "go" + strings.TrimPrefix(value, "go")
			}
		case "Glibc Version":
			if m := libcLine.FindStringSubmatch(value); m != nil {
				v.Libc = strings.ToLower(strings.Replace(m[1], "GLIBC", "glibc", 1))
				if v.Libc == "glibc" {
					v.LibcVersion = m[2]
				}
			}
		}
	}
	return v
}

// Host completes a gateway's build information with what its `krakend version` says: the glibc it was
// built on is printed only there.
func Host(b Build, v Version) Build {
	if b.Go == "" {
		b.Go = v.Go
	}
	// What the binary imports is not what it was built on: unknown unless `krakend version` says.
	b.LibcVersion = ""
	if v.Libc != "" {
		b.Libc, b.LibcVersion = v.Libc, v.LibcVersion
	}
	return b
}

// Difference is one reason a plugin would not load, and what to do about it.
type Difference struct {
	What, Plugin, Gateway, Fix string
}

func (d Difference) String() string {
	return fmt.Sprintf("%s: the plugin has %s, the gateway %s.\n  Fix: %s", d.What, d.Plugin, d.Gateway, d.Fix)
}

// Compare lists every reason the plugin would not load into the host; none means it loads.
func Compare(host, plugin Build) []Difference {
	var diffs []Difference
	add := func(what, p, g, fix string) { diffs = append(diffs, Difference{what, p, g, fix}) }
	if plugin.BuildMode != "plugin" {
		add("build mode", "-buildmode="+orNone(plugin.BuildMode), "plugins only",
			"build it with `make plugin` (go build -buildmode=plugin)")
	}
	if !host.Cgo {
		add("cgo", "cgo", "no cgo: it loads no Go plugin at all",
			"use a KrakenD built with CGO_ENABLED=1 (every KrakenD CE release is), or run krakend-kafka as a service beside it")
	}
	switch {
	case host.Libc == "musl" && plugin.Libc != "musl":
		add("libc", orNone(plugin.Libc), "musl (the official KrakenD images are Alpine)",
			"a glibc plugin cannot load into a musl gateway: run KrakenD's glibc build (the .deb, .rpm or .tar.gz, "+
				"or an image FROM debian with it), or run krakend-kafka as a service beside the gateway")
	case plugin.Libc == "musl" && host.Libc == "glibc":
		add("libc", "musl", "glibc", "build the plugin on a glibc system (krakend/builder:<version>-linux-generic)")
	case host.Libc == "glibc" && host.LibcVersion != "" && glibcNewer(plugin.LibcVersion, host.LibcVersion):
		add("glibc", "symbols of glibc "+plugin.LibcVersion, "glibc "+host.LibcVersion,
			"build the plugin on the gateway's distribution, with glibc "+host.LibcVersion+" or older "+
				"(krakend/builder:<version>-linux-generic is Debian bookworm, glibc 2.36)")
	}
	if plugin.Go != host.Go {
		add("Go release", plugin.Go, host.Go,
			fmt.Sprintf("rebuild with %s: `make plugin GO=/path/to/%s/bin/go`", host.Go, host.Go))
	}
	if plugin.Trimpath != host.Trimpath {
		fix := "rebuild without -trimpath, as KrakenD's releases are built: `make plugin`"
		if host.Trimpath {
			fix = "rebuild with -trimpath: `make plugin GO_BUILD_FLAGS=-trimpath`"
		}
		add("-trimpath", setting(plugin.Trimpath), setting(host.Trimpath), fix)
	}
	if plugin.Race != host.Race {
		add("-race", setting(plugin.Race), setting(host.Race), "build both with the same -race setting")
	}
	if plugin.Experiment != host.Experiment {
		add("GOEXPERIMENT", orNone(plugin.Experiment), orNone(host.Experiment),
			"build the plugin with GOEXPERIMENT="+host.Experiment)
	}
	paths := make([]string, 0, len(plugin.Modules))
	for path := range plugin.Modules {
		paths = append(paths, path)
	}
	sort.Strings(paths)
	for _, path := range paths {
		if version, hv := plugin.Modules[path], host.Modules[path]; hv != "" && hv != version {
			fix := fmt.Sprintf("in go-shim/: `go get %s@%s`, then `make plugin`", path, hv)
			if fork, replaced := strings.CutPrefix(hv, "=> "); replaced {
				fix = fmt.Sprintf("in go-shim/: `go mod edit -replace %s=%s`, then `make plugin`",
					path, strings.Replace(fork, " ", "@", 1))
			}
			add("module "+path, version, hv, fix)
		}
	}
	return diffs
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func setting(on bool) string {
	if on {
		return "it set"
	}
	return "it not set"
}
