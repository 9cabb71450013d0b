defmodule ElixirScope.Web.Guard do
  @moduledoc false
  # The request checks ElixirScope's HTTP servers share (the MCP server and the web
  # UI): DNS-rebinding protection on `Host` and `Origin`, and token comparison. A web
  # page the developer visits elsewhere can make the browser send requests to a
  # loopback port; what it cannot do is make them carry a loopback `Host` under its
  # own name after rebinding DNS, or hide its `Origin`. Each server answers a refusal
  # in its own format.

  @loopback_hosts ["localhost", "127.0.0.1", "::1"]

  @doc false
  # :ok, or {:error, why} naming the header value refused.
  def check_host(nil, _allowed_hosts), do: {:error, "no Host header"}

  def check_host(host, allowed_hosts) do
    name = host |> String.downcase() |> host_name()

    if name in @loopback_hosts or name in allowed_hosts,
      do: :ok,
      else: {:error, "invalid Host header #{inspect(host)}"}
  end

  # "example.com:4047" -> "example.com"; "[::1]:4047" -> "::1"
  defp host_name("[" <> rest), do: rest |> String.split("]", parts: 2) |> hd()
  defp host_name(host), do: host |> String.split(":", parts: 2) |> hd()

  @doc false
  # A request without Origin (not sent by a browser, or a same-origin GET) passes; a
  # browser's Origin must be a loopback one or one of `allowed_origins`.
  def check_origin(nil, _allowed_origins), do: :ok

  def check_origin(origin, allowed_origins) do
    uri = URI.parse(origin)

    loopback =
      uri.scheme in ["http", "https"] and is_binary(uri.host) and
        String.downcase(uri.host) in @loopback_hosts

    if loopback or origin in allowed_origins,
      do: :ok,
      else: {:error, "origin #{inspect(origin)} is not allowed"}
  end

  @doc false
  # Whether `given` is the token, in time that does not depend on where they differ.
  def token_matches?(given, token) when is_binary(given) and is_binary(token),
    do: byte_size(given) == byte_size(token) and :crypto.hash_equals(given, token)

  def token_matches?(_given, _token), do: false
end
