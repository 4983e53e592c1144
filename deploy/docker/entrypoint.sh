#!/bin/sh
# No arguments: run the service this image was built for. Arguments: the `gatehouse`
# command line (`run relay`, `migrate authors`, `--help`). exec keeps the service PID 1
# of its shell-less process tree, so SIGTERM reaches it and it drains.
set -eu
if [ "$#" -eq 0 ]; then
    exec gatehouse run "${GATEHOUSE_SERVICE:?GATEHOUSE_SERVICE is not set}"
fi
exec gatehouse "$@"
