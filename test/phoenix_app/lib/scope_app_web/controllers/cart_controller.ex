defmodule ScopeAppWeb.CartController do
  use ScopeAppWeb, :controller

  def show(conn, _params) do
    cart = ScopeApp.Cart.show()
    json(conn, %{items: cart.items, total: cart.total})
  end

  def add(conn, %{"item" => item} = params) do
    price = params |> Map.get("price", "1") |> to_string() |> String.to_integer()
    cart = ScopeApp.Cart.add(item, price)
    conn |> put_status(201) |> json(%{items: cart.items, total: cart.total})
  end

  def boom(_conn, _params), do: raise(ArgumentError, "boom requested")
end
