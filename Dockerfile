# syntax=docker/dockerfile:1
#
# orgdispatch's container image: one static binary on distroless, running as
# a non-root user. Every command is in it (serve, api, worker, sim, publish,
# status, health, …): pick one with the container's command, e.g.
#
#   docker build -t orgdispatch .
#   docker run --rm orgdispatch help

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/orgdispatch ./cmd/orgdispatch

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/orgdispatch /orgdispatch
# A writable home for the embedded server's store (serve with no
# ORGDISPATCH_NATS_URL keeps it in data/nats under the working directory).
WORKDIR /home/nonroot
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/orgdispatch"]
CMD ["help"]
