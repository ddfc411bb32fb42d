package mem

import "github.com/herald-dev/herald/broker"

// entry is one message waiting in a group: the stored message, shared by
// every group it was published to and never modified, and the attempt its
// next delivery will be.
type entry struct {
	m       *broker.Message
	attempt int
}

// minQueue is the smallest buffer a queue keeps once it has grown.
const minQueue = 64

// queue is a FIFO of entries in a ring buffer whose size is a power of two.
// It grows by doubling when full and halves when it falls below a quarter
// full, so a burst's memory is given back once it has been consumed. The
// zero value is an empty queue. It is not safe for concurrent use: a group
// guards it with its mutex.
type queue struct {
	buf  []entry
	head int
	n    int
}

func (q *queue) len() int { return q.n }

// push appends e at the back.
func (q *queue) push(e entry) {
	if q.n == len(q.buf) {
		q.resize(max(2*len(q.buf), minQueue))
	}
	q.buf[(q.head+q.n)&(len(q.buf)-1)] = e
	q.n++
}

// pushFront puts e at the front, to be popped next.
func (q *queue) pushFront(e entry) {
	if q.n == len(q.buf) {
		q.resize(max(2*len(q.buf), minQueue))
	}
	q.head = (q.head - 1) & (len(q.buf) - 1)
	q.buf[q.head] = e
	q.n++
}

// pop removes and returns the front entry; the queue must not be empty.
func (q *queue) pop() entry {
	e := q.buf[q.head]
	q.buf[q.head] = entry{} // let the message be collected once handled
	q.head = (q.head + 1) & (len(q.buf) - 1)
	q.n--
	if len(q.buf) > minQueue && q.n < len(q.buf)/4 {
		q.resize(len(q.buf) / 2)
	}
	return e
}

// resize moves the entries into a new buffer of size (a power of two, at
// least q.n).
func (q *queue) resize(size int) {
	buf := make([]entry, size)
	if q.n > 0 {
		end := q.head + q.n
		if end <= len(q.buf) {
			copy(buf, q.buf[q.head:end])
		} else {
			k := copy(buf, q.buf[q.head:])
			copy(buf[k:], q.buf[:end-len(q.buf)])
		}
	}
	q.buf, q.head = buf, 0
}
