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

# Docker access (berth:jenkins.dockerAccess.perBuild): the Docker plugin sets DOCKER_HOST and, for
# mutual TLS, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH on the container. SSH sessions do not inherit
# the container's environment; pam_env reads /etc/environment into them (as jenkins/ssh-agent does).
for var in DOCKER_HOST DOCKER_TLS_VERIFY DOCKER_CERT_PATH; do
  value=${!var:-}
  if [[ -n $value && $value =~ ^[A-Za-z0-9_./:=@-]+$ ]]; then
    sed -i "/^${var}=/d" /etc/environment
    printf '%s=%s\n' "$var" "$value" >>/etc/environment
  fi
done
# With the host's socket mounted, user jenkins joins the socket's group (its gid differs per host OS).
sock=/var/run/docker.sock
if [[ -S $sock ]]; then
  gid=$(stat -c %g "$sock")
  if [[ $gid != 0 ]]; then
    group=$(getent group "$gid" | cut -d: -f1 || true)
    if [[ -z $group ]]; then
      group=docker-host
      groupadd -g "$gid" "$group"
    fi
    usermod -aG "$group" jenkins
  fi
fi

mkdir -p /run/sshd
ssh-keygen -A >/dev/null

if [[ $# -eq 0 ]]; then
  exec /usr/sbin/sshd -D -e
fi
exec "$@"
