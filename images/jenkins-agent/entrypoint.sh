#!/bin/bash
# Entry point of Berth's per-build agent image.
#   - JENKINS_AGENT_SSH_PUBKEY, when it is one line starting with "ssh-", becomes the only
#     authorized key of user jenkins (like jenkins/ssh-agent); anything else is refused.
#   - Host keys are made per container: a per-build agent lives for one build.
#   - With no arguments, sshd runs in the foreground logging to stderr. The Docker plugin's SSH
#     connector (injectSSHKey) passes its own sshd command line, which is run as given.
set -euo pipefail

home=${JENKINS_AGENT_HOME:-/home/jenkins}
key=${JENKINS_AGENT_SSH_PUBKEY:-}
if [[ -n $key ]]; then
  if [[ $key == ssh-* && $key != *$'\n'* && $key != *$'\r'* ]]; then
    install -d -m 0700 -o jenkins -g jenkins "$home/.ssh"
    printf '%s\n' "$key" >"$home/.ssh/authorized_keys"
    chown jenkins:jenkins "$home/.ssh/authorized_keys"
    chmod 0600 "$home/.ssh/authorized_keys"
  else
    echo "berth-agent-entrypoint: JENKINS_AGENT_SSH_PUBKEY ignored: only one key line whose type starts with ssh- is accepted" >&2
  fi
fi

mkdir -p /run/sshd
ssh-keygen -A >/dev/null

if [[ $# -eq 0 ]]; then
  exec /usr/sbin/sshd -D -e
fi
exec "$@"
