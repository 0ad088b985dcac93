// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// The p2pwg peer list on chain: the ordered node.json URLs that a Gist would
/// hold. Position i in nodes() is overlay address 10.88.0.(10 + i), as in the
/// Gist, so removing or moving an entry moves the addresses after it.
/// controld reads nodes() with eth_call; the owner edits the list.
contract P2pwgRegistry {
    uint256 public constant MAX_NODES = 245; // the overlay's limit, as controld's
    uint256 public constant MAX_URL = 2048;  // controld skips longer URLs

    address public owner;
    string[] private list;

    event NodeAdded(uint256 indexed index, string url);
    event NodeRemoved(uint256 indexed index, string url);
    event NodeMoved(uint256 indexed from, uint256 indexed to, string url);
    event OwnerChanged(address indexed previous, address indexed next);

    error NotOwner();
    error BadIndex();
    error ListFull();
    error BadUrl();

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner();
        _;
    }

    constructor() {
        owner = msg.sender;
        emit OwnerChanged(address(0), msg.sender);
    }

    /// The whole list, in overlay order.
    function nodes() external view returns (string[] memory) {
        return list;
    }

    function count() external view returns (uint256) {
        return list.length;
    }

    /// Append url: it gets the next free position.
    function add(string calldata url) external onlyOwner {
        if (list.length >= MAX_NODES) revert ListFull();
        if (bytes(url).length == 0 || bytes(url).length > MAX_URL) revert BadUrl();
        list.push(url);
        emit NodeAdded(list.length - 1, url);
    }

    /// Remove the entry at index; every later entry moves up one position.
    function remove(uint256 index) external onlyOwner {
        uint256 n = list.length;
        if (index >= n) revert BadIndex();
        string memory url = list[index];
        for (uint256 i = index; i + 1 < n; i++) list[i] = list[i + 1];
        list.pop();
        emit NodeRemoved(index, url);
    }

    /// Move the entry at from to position to; the entries between shift by one.
    function move(uint256 from, uint256 to) external onlyOwner {
        uint256 n = list.length;
        if (from >= n || to >= n) revert BadIndex();
        if (from == to) return;
        string memory url = list[from];
        if (from < to) {
            for (uint256 i = from; i < to; i++) list[i] = list[i + 1];
        } else {
            for (uint256 i = from; i > to; i--) list[i] = list[i - 1];
        }
        list[to] = url;
        emit NodeMoved(from, to, url);
    }

    function setOwner(address next) external onlyOwner {
        emit OwnerChanged(owner, next);
        owner = next;
    }
}
