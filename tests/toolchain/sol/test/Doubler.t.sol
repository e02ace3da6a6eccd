// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Doubler} from "../src/Doubler.sol";

contract DoublerTest {
    function test_doubles() public {
        Doubler d = new Doubler();
        require(d.run(21) == 42, "21*2");
        require(d.last() == 42, "stored");
    }
}
