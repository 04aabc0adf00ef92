# Build: docker build -t ringstore .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /ringstore ./cmd/ringstore

FROM gcr.io/distroless/static-debian12
COPY --from=build /ringstore /ringstore
VOLUME /data
EXPOSE 9000 9001 9002 9002/udp
ENTRYPOINT ["/ringstore"]
CMD ["server", "--data", "/data", "--s3-addr", "0.0.0.0:9000"]
