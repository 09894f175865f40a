//! The course's example callee (`example/callee/userservice.cc`,
//! `friendservice.cc`): plain local services first, then the same code behind
//! the generated traits so the framework can call it.

use crate::fixbug::{
    FriendServiceRpc, GetFriendsListRequest, GetFriendsListResponse, LoginRequest, LoginResponse,
    RegisterRequest, RegisterResponse, ResultCode, UserServiceRpc,
};
use std::collections::HashMap;
use std::sync::Mutex;

// ANCHOR: local
/// A user account service. Nothing here knows about RPC yet.
#[derive(Debug, Default)]
pub struct UserService {
    /// Registered users by id.
    users: Mutex<HashMap<u32, Account>>,
}

/// One registered user. A real service would keep a salted password hash
/// in a database, not the plain password in memory.
#[derive(Debug)]
struct Account {
    /// The login name.
    name: Vec<u8>,
    /// The password, as sent by the client.
    pwd: Vec<u8>,
}

impl UserService {
    /// The local business method: true when `name` is registered with `pwd`.
    pub fn login(&self, name: &[u8], pwd: &[u8]) -> bool {
        // A poisoned lock only means another call panicked mid-update; the
        // map itself is still usable, so keep serving.
        let users = self
            .users
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        users
            .values()
            .any(|account| account.name == name && account.pwd == pwd)
    }

    /// Registers user `id`; false when the id is taken.
    pub fn register(&self, id: u32, name: &[u8], pwd: &[u8]) -> bool {
        let mut users = self
            .users
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if users.contains_key(&id) {
            return false;
        }
        users.insert(
            id,
            Account {
                name: name.to_vec(),
                pwd: pwd.to_vec(),
            },
        );
        true
    }
}
// ANCHOR_END: local

// ANCHOR: rpc_impl
/// The same service, callable by the framework: read the request, run the
/// local method, fill the response. Returning sends it (C++: `done->Run()`).
impl UserServiceRpc for UserService {
    fn login(&self, request: &LoginRequest, response: &mut LoginResponse) {
        let success = UserService::login(self, &request.name, &request.pwd);
        // The course always writes a result, even on success: errcode 0 and
        // an empty message. That makes the response `0a 00 ...` on the wire.
        response.result = Some(ResultCode::default());
        response.success = success;
    }

    fn register(&self, request: &RegisterRequest, response: &mut RegisterResponse) {
        let success = UserService::register(self, request.id, &request.name, &request.pwd);
        response.result = Some(ResultCode::default());
        response.success = success;
    }
}
// ANCHOR_END: rpc_impl

/// A friend-list service: the course's second callee.
#[derive(Debug, Default)]
pub struct FriendService;

impl FriendService {
    /// The local business method: the friends of `user_id`. A fixed list,
    /// as in the course; a real one would query storage.
    pub fn get_friends_list(&self, user_id: u32) -> Vec<Vec<u8>> {
        let _ = user_id;
        vec![
            b"gao yang".to_vec(),
            b"liu hong".to_vec(),
            b"wang shuo".to_vec(),
        ]
    }
}

impl FriendServiceRpc for FriendService {
    fn get_friends_list(
        &self,
        request: &GetFriendsListRequest,
        response: &mut GetFriendsListResponse,
    ) {
        response.result = Some(ResultCode::default());
        response.friends = FriendService::get_friends_list(self, request.userid);
    }
}
