//! `FriendServiceRpc`: a fixed friend list, like the course's example.

use mprpc::{CallContext, Status};

use crate::fixbug::{FriendServiceRpc, GetFriendsListRequest, GetFriendsListResponse, ResultCode};

/// Answers every user with the same three friends, and user 0 with an
/// application error.
#[derive(Debug, Default)]
pub struct FriendService;

impl FriendServiceRpc for FriendService {
    async fn get_friends_list(
        &self,
        _ctx: CallContext,
        request: GetFriendsListRequest,
    ) -> Result<GetFriendsListResponse, Status> {
        if request.userid == 0 {
            // An application-level error travels inside the response.
            return Ok(GetFriendsListResponse {
                result: Some(ResultCode {
                    errcode: 1,
                    errmsg: b"userid 0 does not exist".to_vec(),
                }),
                friends: Vec::new(),
            });
        }
        Ok(GetFriendsListResponse {
            result: Some(ResultCode::default()),
            friends: ["gao yang", "liu hong", "wang shuo"]
                .iter()
                .map(|f| f.as_bytes().to_vec())
                .collect(),
        })
    }
}
