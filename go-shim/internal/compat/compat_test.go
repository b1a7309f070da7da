package compat

import (
	"os"
	"runtime"
	"strings"
	"testing"
)

// ce is KrakenD CE v2.13.8 as its release is built, as its build information and `krakend version` say.
var ce = Build{Go: "go1.25.12", Cgo: true, Libc: "glibc", LibcVersion: "2.36",
	Modules: map[string]string{"github.com/luraproject/lura/v2": "v2.14.1", "golang.org/x/sys": "v0.45.0"}}

func plugin() Build {
	return Build{Go: "go1.25.12", Cgo: true, BuildMode: "plugin", Libc: "glibc", LibcVersion: "2.34",
		Modules: map[string]string{}}
}

func whats(diffs []Difference) []string {
	var out []string
	for _, d := range diffs {
		out = append(out, d.What)
	}
	return out
}

func TestAPluginBuiltAsTheGatewayIsLoads(t *testing.T) {
	if diffs := Compare(ce, plugin()); len(diffs) != 0 {
		t.Fatalf("%v", diffs)
	}
}

func TestEachDifferenceIsNamedWithItsFix(t *testing.T) {
	cases := []struct {
		name   string
		change func(host, plugin *Build)
		what   string
		fix    string
	}{
		{"another Go", func(_, p *Build) { p.Go = "go1.26.8" }, "Go release", "make plugin GO=/path/to/go1.25.12/bin/go"},
		{"trimpath", func(_, p *Build) { p.Trimpath = true }, "-trimpath", "rebuild without -trimpath"},
		{"host trimpath", func(h, _ *Build) { h.Trimpath = true }, "-trimpath", "GO_BUILD_FLAGS=-trimpath"},
		{"race", func(_, p *Build) { p.Race = true }, "-race", "same -race"},
		{"experiment", func(h, _ *Build) { h.Experiment = "greenteagc" }, "GOEXPERIMENT", "GOEXPERIMENT=greenteagc"},
		{"musl gateway", func(h, _ *Build) { h.Libc, h.LibcVersion = "musl", "" }, "libc", "as a service"},
		{"newer glibc", func(_, p *Build) { p.LibcVersion = "2.38" }, "glibc", "glibc 2.36 or older"},
		{"no cgo", func(h, _ *Build) { h.Cgo = false }, "cgo", "CGO_ENABLED=1"},
		{"not a plugin", func(_, p *Build) { p.BuildMode = "exe" }, "build mode", "make plugin"},
		{"shared module", func(_, p *Build) { p.Modules["golang.org/x/sys"] = "v0.42.0" },
			"module golang.org/x/sys", "go get golang.org/x/sys@v0.45.0"},
		{"replaced module", func(h, p *Build) {
			h.Modules["golang.org/x/sys"], p.Modules["golang.org/x/sys"] = "=> example.com/sys v0.45.0", "v0.45.0"
		},
			"module golang.org/x/sys", "go mod edit -replace golang.org/x/sys=example.com/sys@v0.45.0"},
	}
	for _, c := range cases {
		host, p := ce, plugin()
		host.Modules = map[string]string{"github.com/luraproject/lura/v2": "v2.14.1", "golang.org/x/sys": "v0.45.0"}
		c.change(&host, &p)
		diffs := Compare(host, p)
		if len(diffs) != 1 || diffs[0].What != c.what || !strings.Contains(diffs[0].Fix, c.fix) {
			t.Errorf("%s: want one %q difference fixed by %q, got %v", c.name, c.what, c.fix, diffs)
		}
	}
}

func TestAModuleOnlyThePluginHasIsNoDifference(t *testing.T) {
	p := plugin()
	p.Modules["example.com/only-here"] = "v1.0.0"
	if diffs := Compare(ce, p); len(diffs) != 0 {
		t.Fatalf("%v", whats(diffs))
	}
}

func TestVersionOutputOfKrakenDCE(t *testing.T) {
	got := ParseVersion("KrakenD Version: 2.13.8\nGo Version: 1.25.12\nGlibc Version: GLIBC-2.36_(debian-12)\n")
	if got != (Version{Go: "go1.25.12", Libc: "glibc", LibcVersion: "2.36"}) {
		t.Fatalf("%+v", got)
	}
	got = ParseVersion("KrakenD Version: 2.13.8\nGo Version: 1.25.12\nGlibc Version: MUSL-1.2.5_(alpine-3.23.0)\n")
	if got != (Version{Go: "go1.25.12", Libc: "musl"}) {
		t.Fatalf("%+v", got)
	}
	got = ParseVersion("Go Version: undefined\nGlibc Version: undefined\n")
	if got != (Version{}) {
		t.Fatalf("%+v", got)
	}
}

func TestTheVersionOutputFillsWhatTheBinaryDoesNotSay(t *testing.T) {
	host := Host(Build{Go: "go1.25.12", Libc: "glibc"}, ParseVersion("Glibc Version: GLIBC-2.36_(debian-12)"))
	if host.Libc != "glibc" || host.LibcVersion != "2.36" || host.Go != "go1.25.12" {
		t.Fatalf("%+v", host)
	}
	// The glibc symbols a gateway imports are not the glibc it was built on.
	if host := Host(Build{Go: "go1.25.12", Libc: "glibc", LibcVersion: "2.34"}, Version{}); host.LibcVersion != "" {
		t.Fatalf("%+v", host)
	}
}

func TestGlibcVersionsCompareAsNumbers(t *testing.T) {
	for _, c := range []struct {
		a, b  string
		newer bool
	}{{"2.38", "2.36", true}, {"2.4", "2.36", false}, {"2.36", "2.36", false}, {"2.3.4", "2.3", true},
		{"2.2.5", "", true}, {"PRIVATE", "2.2.5", false}} {
		if got := glibcNewer(c.a, c.b); got != c.newer {
			t.Errorf("glibcNewer(%q, %q) = %v", c.a, c.b, got)
		}
	}
}

// The test binary is a Go executable built here: its build information is this toolchain's.
func TestReadsARealBinary(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := Read(self)
	if err != nil {
		t.Fatal(err)
	}
	if b.Go != runtime.Version() || b.BuildMode != "exe" || b.Modules == nil {
		t.Fatalf("%+v", b)
	}
	if _, err := Read("compat.go"); err == nil {
		t.Fatal("a Go source file read as a binary")
	}
}
