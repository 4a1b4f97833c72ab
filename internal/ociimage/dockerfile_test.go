package ociimage

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestManifestsDockerfile: make image packs manifests/Dockerfile's last stage from what scripts/image/stage.sh made,
// and the Dockerfile's build stage runs that same script, so both ways give an image with the same files.
func TestManifestsDockerfile(t *testing.T) {
	const dockerfile = "../../manifests/Dockerfile"
	img, err := FromDockerfile(dockerfile, map[string]string{"build": "/stage"}, "/context")
	if err != nil {
		t.Fatal(err)
	}
	want := []Source{{From: "/stage/rootfs", To: "/"}, {From: "/stage/out/ipvs-proxy", To: "/usr/local/bin/ipvs-proxy"}}
	if !reflect.DeepEqual(img.Content, want) {
		t.Errorf("content %+v, want %+v", img.Content, want)
	}
	if !reflect.DeepEqual(img.Entrypoint, []string{"/usr/local/bin/ipvs-proxy"}) {
		t.Errorf("entrypoint %v", img.Entrypoint)
	}
	data, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "scripts/image/stage.sh /\n") {
		t.Error("the build stage must run scripts/image/stage.sh / (what make image runs into its stage directory)")
	}
}

func TestFromDockerfileRefusesWhatNeedsAContainer(t *testing.T) {
	for name, text := range map[string]string{
		"base image":       "FROM debian:bookworm\nCOPY a /a\n",
		"RUN":              "FROM scratch\nRUN true\n",
		"two COPY sources": "FROM scratch\nCOPY a b /dest/\n",
		"unknown stage":    "FROM scratch\nCOPY --from=other /a /a\n",
	} {
		path := filepath.Join(t.TempDir(), "Dockerfile")
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := FromDockerfile(path, nil, "."); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestFromDockerfileInstructions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "Dockerfile")
	text := "FROM golang AS build\nRUN make\n\n# the image\nFROM scratch\nCOPY --from=build /out/app \\\n  /app\n" +
		"ENV PATH=/bin A=\"b c\"\nLABEL k=v\nWORKDIR /w\nENTRYPOINT [\"/app\"]\nCMD [\"serve\", \"--port=1\"]\n"
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := FromDockerfile(path, map[string]string{"build": "/s"}, ".")
	if err != nil {
		t.Fatal(err)
	}
	want := Image{
		Content:    []Source{{From: "/s/out/app", To: "/app"}},
		Env:        []string{"PATH=/bin", "A=b c"},
		Labels:     map[string]string{"k": "v"},
		WorkingDir: "/w",
		Entrypoint: []string{"/app"},
		Cmd:        []string{"serve", "--port=1"},
	}
	if !reflect.DeepEqual(img, want) {
		t.Errorf("got %+v\nwant %+v", img, want)
	}
}
