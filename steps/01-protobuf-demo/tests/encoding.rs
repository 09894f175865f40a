//! The bytes prost writes are the protobuf wire format, checked by hand.

use step::{friend_lists_response, login_request, round_trip, to_hex, user_directory};

/// LoginRequest { name: "zhang san", pwd: "123456" }, encoded by hand:
///
/// ```text
/// 0a                     field 1 (name), wire type 2 (length-delimited): 1 << 3 | 2
/// 09                     length 9
/// 7a68616e672073616e     "zhang san"
/// 12                     field 2 (pwd), wire type 2: 2 << 3 | 2
/// 06                     length 6
/// 313233343536           "123456"
/// ```
#[test]
fn login_request_has_the_hand_encoded_bytes() {
    let comparison = round_trip(&login_request()).expect("round trip of a value we built");
    assert_eq!(
        to_hex(&comparison.protobuf),
        "0a097a68616e672073616e1206313233343536"
    );
    assert_eq!(comparison.protobuf.len(), 19);
    assert_eq!(comparison.json, r#"{"name":"zhang san","pwd":"123456"}"#);
}

/// A repeated field is the same tag written once per element:
///
/// ```text
/// 0a 00                          field 1 (result): present, every field default -> empty
/// 12 0d                          field 2 (friend_list), 13 bytes: the first User
///    0a 09 7a68616e672073616e    name "zhang san"
///    10 14                       age (field 2, varint) = 20; sex MAN = 0 is not written
/// 12 0b                          field 2 again, 11 bytes: the second User
///    0a 05 6c69207369            name "li si"
///    10 16                       age = 22
///    18 01                       sex (field 3, varint) = WOMAN = 1
/// ```
#[test]
fn repeated_field_writes_one_entry_per_element() {
    let comparison = round_trip(&friend_lists_response()).expect("round trip");
    assert_eq!(
        to_hex(&comparison.protobuf),
        "0a00120d0a097a68616e672073616e1014120b0a056c6920736910161801"
    );
}

/// A map is a repeated entry message `{ key = 1; value = 2; }`:
///
/// ```text
/// 0a 12                          field 1 (users_by_id), 18 bytes: one entry
///    08 e807                     key = 1000 as a varint (0x3e8 -> e8 07)
///    12 0d ...                   value: the same 13-byte User as above
/// 0a 10                          the next entry, 16 bytes
///    08 e907                     key = 1001
///    12 0b ...                   value: li si
/// ```
#[test]
fn map_is_a_repeated_key_value_entry() {
    let comparison = round_trip(&user_directory()).expect("round trip");
    assert_eq!(
        to_hex(&comparison.protobuf),
        "0a1208e807120d0a097a68616e672073616e1014\
         0a1008e907120b0a056c6920736910161801"
    );
}
