#!/usr/bin/env bash
# Builds kube-apiserver and kube-controller-manager from the module proxy
# (k8s.io/kubernetes at KUBE_VERSION) into OUT, for `make k8s`: a real API
# server on 127.0.0.1 with etcd, no kubelet, no containers.
#
# `go install k8s.io/kubernetes/cmd/kube-apiserver@v1.34.N` is refused: that
# module replaces its staging modules by ./staging/src/... paths. A throwaway
# module that requires k8s.io/kubernetes and replaces every one of those
# staging modules by its published v0.34.N builds it (about 8 minutes for the
# API server and 4 more for the controller manager on 2 cores). The version
# is linked in, or kubectl's and Helm's kubeVersion checks see v0.0.0-master.
#
# Usage: build-kube.sh v1.34.4 OUT_DIR
set -euo pipefail
version=${1:?kubernetes version, e.g. v1.34.4}
out=${2:?output directory}
staging=v0.${version#v1.}
minor=$(cut -d. -f2 <<<"${version#v}")
export GOSUMDB=off GOFLAGS=-mod=mod GOTOOLCHAIN=local

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
go mod init certpulse.local/kubebuild >/dev/null 2>&1
gomod=$(go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
[ -s "$gomod" ] || { echo "build-kube: no go.mod for k8s.io/kubernetes@$version" >&2; exit 1; }
go mod edit -require="k8s.io/kubernetes@$version"
# Every staging module the kubernetes go.mod points at ./staging, at its
# published version.
for m in $(sed -n 's#^\s*\(k8s\.io/[^ ]*\) => \./staging/.*#\1#p' "$gomod"); do
	go mod edit -replace="$m=$m@$staging"
done
cat >tools.go <<'EOF'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
EOF
go mod tidy -e >/dev/null 2>&1 || true
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/client-go/pkg/version.gitVersion=$version"
mkdir -p "$out.tmp"
for cmd in kube-apiserver kube-controller-manager; do
	CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out.tmp/$cmd" "k8s.io/kubernetes/cmd/$cmd"
done
rm -rf "$out"
mv "$out.tmp" "$out"
"$out/kube-apiserver" --version
