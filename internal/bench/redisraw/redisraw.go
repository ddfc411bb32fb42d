// Package redisraw is the raw go-redis baseline of Herald's Redis Streams
// backend: what the engine's own client does at its best, measured in the
// same process against the same server, so that Herald's figures can be
// given as a ratio to it.
package redisraw

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Batch is how many commands go in one pipeline (XADD) and how many entries
// one XREADGROUP asks for.
const Batch = 1000

// Run measures the raw client on the server at url with messages entries of
// size bytes:
//
//   - publish: XADD in pipelines of [Batch], each pipeline waited for before
//     the next, the rate being messages over the time to publish them all;
//   - consume: with the entries in the stream and a consumer group created
//     before they were added, XREADGROUP of up to [Batch] entries and one
//     XACK of all their IDs per round, until every entry was read and
//     acknowledged.
//
// The stream is deleted afterwards.
func Run(ctx context.Context, url string, messages, size int) (publishedPerSec, consumedPerSec float64, err error) {
	if messages < 1 {
		return 0, 0, errors.New("redisraw: messages must be >= 1")
	}
	size = max(size, 8)
	opt, err := goredis.ParseURL(url)
	if err != nil {
		return 0, 0, fmt.Errorf("redisraw: %w", err)
	}
	c := goredis.NewClient(opt)
	defer c.Close()
	stream := "herald-bench-raw:{" + strconv.FormatUint(rand.Uint64(), 36) + "}"
	const group = "raw"
	if err := c.XGroupCreateMkStream(ctx, stream, group, "$").Err(); err != nil {
		return 0, 0, fmt.Errorf("redisraw: create group: %w", err)
	}
	defer c.Del(context.WithoutCancel(ctx), stream)

	body := make([]byte, size)
	start := time.Now()
	for first := 0; first < messages; first += Batch {
		n := min(Batch, messages-first)
		_, err := c.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for i := range n {
				b := make([]byte, size)
				copy(b, body)
				binary.BigEndian.PutUint64(b, uint64(first+i))
				p.XAdd(ctx, &goredis.XAddArgs{Stream: stream, Values: []any{"b", b}})
			}
			return nil
		})
		if err != nil {
			return 0, 0, fmt.Errorf("redisraw: XADD: %w", err)
		}
	}
	published := time.Since(start)

	start = time.Now()
	got := 0
	for got < messages {
		res, err := c.XReadGroup(ctx, &goredis.XReadGroupArgs{
			Group: group, Consumer: "raw-1", Streams: []string{stream, ">"}, Count: Batch, Block: 5 * time.Second,
		}).Result()
		if errors.Is(err, goredis.Nil) {
			return 0, 0, fmt.Errorf("redisraw: read %d of %d entries, then none for 5s", got, messages)
		}
		if err != nil {
			return 0, 0, fmt.Errorf("redisraw: XREADGROUP: %w", err)
		}
		for _, s := range res {
			ids := make([]string, len(s.Messages))
			for i, m := range s.Messages {
				ids[i] = m.ID
			}
			if len(ids) == 0 {
				continue
			}
			if err := c.XAck(ctx, stream, group, ids...).Err(); err != nil {
				return 0, 0, fmt.Errorf("redisraw: XACK: %w", err)
			}
			got += len(ids)
		}
	}
	consumed := time.Since(start)
	return rate(messages, published), rate(messages, consumed), nil
}

func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}
