#!/bin/sh
# Writes access.log: LINES (default 3000) lines in the combined log format, with client
# addresses from the documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
# RFC 5737; 2001:db8::/32, RFC 3849) and e-mail addresses at example.com and example.org
# (RFC 2606): nothing real. awk's random numbers differ between awk implementations, so
# the lines may too; their shape does not.
set -eu
LINES=${1:-3000}
awk -v lines="$LINES" 'BEGIN {
    srand(2026)
    split("GET GET GET POST PUT DELETE", methods, " ")
    split("/ /index.html /api/items /api/items/17 /login /search /static/app.js /health", paths, " ")
    split("200 200 200 200 201 204 301 304 400 401 403 404 500 503", codes, " ")
    split("ada grace linus barbara ken margaret", users, " ")
    split("curl/8.5.0|Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0|python-requests/2.32|Go-http-client/1.1", agents, "|")
    split("192.0.2 198.51.100 203.0.113", nets, " ")
    months = "Dec"
    for (i = 0; i < lines; i++) {
        r = rand()
        if (r < 0.7) {
            client = nets[1 + int(rand() * 3)] "." (1 + int(rand() * 254))
        } else {
            client = sprintf("2001:db8:%x::%x", int(rand() * 65536), 1 + int(rand() * 65535))
        }
        user = "-"
        if (rand() < 0.3) user = users[1 + int(rand() * 6)] "@example.com"
        path = paths[1 + int(rand() * 8)]
        if (rand() < 0.15) path = path "?contact=" users[1 + int(rand() * 6)] "%40example.org&ref=" nets[1 + int(rand() * 3)] ".7"
        second = i % 60; minute = int(i / 60) % 60; hour = 10 + int(i / 3600)
        printf "%s - %s [03/%s/2026:%02d:%02d:%02d +0000] \"%s %s HTTP/1.1\" %s %d \"-\" \"%s\"\n",
            client, user, months, hour, minute, second,
            methods[1 + int(rand() * 6)], path, codes[1 + int(rand() * 14)],
            100 + int(rand() * 9000), agents[1 + int(rand() * 4)]
    }
}' > "$(dirname "$0")/access.log"
