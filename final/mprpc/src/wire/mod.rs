//! What travels on a connection, and nothing else: encoding and decoding,
//! no sockets.
//!
//! `frame` is mprpc's own format (preamble, length-prefixed frames with call
//! ids, the metadata block); `course` is the C++ course's format
//! (`[u32 header_size][RpcHeader][args]`), still spoken to old callers and
//! providers. The server and the client both build on these; neither file
//! depends on either side. Public at the old paths `mprpc::frame` and
//! `mprpc::legacy`.

pub(crate) mod course;
pub(crate) mod frame;
