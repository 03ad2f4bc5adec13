# The luapool daemon in a container (docs/deploy.md, "Container").
#   docker build -t luapool .
#   docker run --rm -v /run/luapool:/run/luapool luapool \
#     serve --socket /run/luapool/lp.sock --home-store postgres://USER:PASSWORD@HOST/DB
# Not built in CI: the project's machines cannot reach a container registry.

# Build: Lua, SQLite and the worker's seccomp filter are compiled in (no
# system libraries needed at run time beyond glibc).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p luapool -p luapool-worker \
 && install -D -m 0755 target/release/luapool /out/luapool \
 && install -D -m 0755 target/release/luapool-worker /out/luapool-worker

# Run: the daemon finds luapool-worker next to its own executable.
FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin luapool \
 && mkdir -p /run/luapool /var/lib/luapool \
 && chown luapool /run/luapool /var/lib/luapool
COPY --from=build /out/ /usr/local/bin/
USER luapool
# A Unix socket in a volume the clients share (--tcp listens on loopback only);
# homes in PostgreSQL (--home-store URL) or in a volume (--data /var/lib/luapool).
VOLUME ["/run/luapool", "/var/lib/luapool"]
ENTRYPOINT ["/usr/local/bin/luapool"]
CMD ["serve", "--socket", "/run/luapool/lp.sock", "--data", "/var/lib/luapool"]
