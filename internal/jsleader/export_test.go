package jsleader

// DecodeReplyForTest exposes decodeReply to the fuzz target.
var DecodeReplyForTest = decodeReply
