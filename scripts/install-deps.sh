#!/bin/sh
# Installs everything mtask needs to build, test and benchmark, from Debian 12's packages.
# iproute2 (ip netns, tc) and tcpdump serve the multi-host and CURVE tests; parallel (GNU parallel)
# is what tests/e2e/test_parallel_compat.py compares mtask with; tmux is the terminal the progress
# line and mtask-top are tested in; chromium opens --report's page headless (tests/e2e/test_report.py);
# python3-yaml reads the Kubernetes manifests (tests/e2e/test_kubernetes.py); openssh-server and
# -client: mtask --ssh is tested against real sshd daemons (tests/e2e/test_ssh.py).
# munge, slurmctld, slurmd and slurm-client make the one-node Slurm cluster that
# tests/e2e/test_slurm.py starts in a temporary folder for examples/slurm (the test starts the
# daemons itself, with a configuration of its own; it needs none of the packages' services, which
# fail to start harmlessly without /etc/slurm/slurm.conf where systemd starts them).
# `--build-only`: only what building the binaries needs (examples/kubernetes/Dockerfile).
set -eu
export DEBIAN_FRONTEND=noninteractive
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
build="build-essential cmake ninja-build pkg-config libzmq3-dev cppzmq-dev libmsgpack-cxx-dev libfmt-dev libcli11-dev"
case "${1:-}" in
  --build-only) rest="" ;;
  "") rest="doctest-dev python3 python3-zmq python3-yaml clang libclang-rt-14-dev clang-format
            iproute2 tcpdump tmux parallel chromium openssh-server openssh-client
            munge slurmctld slurmd slurm-client" ;;
  *) echo "usage: $0 [--build-only]" >&2; exit 2 ;;
esac
$SUDO apt-get update -qq
# shellcheck disable=SC2086 # the lists are words on purpose
$SUDO apt-get install -y -qq --no-install-recommends $build $rest >/dev/null
