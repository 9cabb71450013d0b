defmodule ElixirScope.Test.RawHTTP do
  @moduledoc """
  Reading HTTP/1.1 responses from a raw keep-alive socket, for the tests that send
  100,000 requests (through `:httpc` they would take minutes).
  """

  @doc "The next response on `socket`: `{head, body}` (the head with its status line)."
  def read_response(socket, buffer \\ "") do
    case :binary.split(buffer, "\r\n\r\n") do
      [head, rest] ->
        [_, length] = Regex.run(~r/content-length: (\d+)/i, head)
        {head, read_exactly(socket, rest, String.to_integer(length))}

      [_] ->
        {:ok, data} = :gen_tcp.recv(socket, 0, 10_000)
        read_response(socket, buffer <> data)
    end
  end

  defp read_exactly(_socket, buffer, length) when byte_size(buffer) >= length, do: buffer

  defp read_exactly(socket, buffer, length) do
    {:ok, data} = :gen_tcp.recv(socket, 0, 10_000)
    read_exactly(socket, buffer <> data, length)
  end
end
